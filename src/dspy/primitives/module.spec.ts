import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { QAProgram } from '../../program/qa.program';
import { StateLoadError } from './module';

const FIXTURES = resolve(__dirname, '../../../../shared/fixtures/dspy/saved_state');

describe('Module state', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dspy-state-'));
  });

  it('names the QA predictor predict.predict', () => {
    expect(new QAProgram().namedPredictors().map(([n]) => n)).toEqual(['predict.predict']);
  });

  it('loads a Python-saved file and writes it back byte for byte', async () => {
    const program = await new QAProgram().load(join(FIXTURES, 'qa_program_2_demos.json'));
    expect(program.predict.predict.demos).toHaveLength(2);
    const out = join(dir, 'out.json');
    await program.save(out);
    expect(await readFile(out, 'utf8')).toBe(
      await readFile(join(FIXTURES, 'qa_program_2_demos.json'), 'utf8'),
    );
  });

  const bad = async (name: string, body: string) => {
    const file = join(dir, name);
    await writeFile(file, body);
    return file;
  };

  it('rejects a file that is not JSON, naming the file', async () => {
    const file = await bad('broken.json', '{"predict.predict": ');
    await expect(new QAProgram().load(file)).rejects.toThrow(`${file}: program state is not valid JSON`);
  });

  it('rejects unknown predictor names, naming expected and found', async () => {
    const file = await bad('names.json', JSON.stringify({ 'wrong.name': {} }));
    await expect(new QAProgram().load(file)).rejects.toThrow(
      /expected \[predict\.predict\], found \[wrong\.name\]/,
    );
  });

  it('rejects a wrong field count and never half-applies', async () => {
    const good = JSON.parse(await readFile(join(FIXTURES, 'qa_program_2_demos.json'), 'utf8'));
    good['predict.predict'].signature.fields.pop();
    good['predict.predict'].signature.instructions = 'CHANGED';
    const file = await bad('fields.json', JSON.stringify(good));
    const program = new QAProgram();
    const err = await new QAProgram().load(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateLoadError);
    expect((err as StateLoadError).predictor).toBe('predict.predict');
    expect((err as Error).message).toMatch(
      /predictor "predict.predict": signature state has 4 fields but the program's signature has 5/,
    );
    await expect(program.load(file)).rejects.toThrow();
    expect(program.predict.predict.demos).toEqual([]);
    expect(program.predict.predict.signature.instructions).toBe('Answer a question with detailed reasoning.');
  });

  it('rejects a missing file with its path', async () => {
    await expect(new QAProgram().load(join(dir, 'nope.json'))).rejects.toThrow(
      /nope\.json: cannot read program state/,
    );
  });
});
