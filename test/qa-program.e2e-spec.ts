import { LM, MemoryLMCache, OpenAIProvider, settings } from '../src/dspy';
import { QAProgram } from '../src/program/qa.program';
import { FakeOpenAI, startFakeOpenAI } from './support/fake-openai';

/** The runtime end to end: QAProgram → ChatAdapter → LM → the real openai SDK → HTTP → the fake upstream. */
describe('QAProgram over the real openai SDK', () => {
  let upstream: FakeOpenAI;
  const lmFor = (cacheStore: MemoryLMCache | null = null) =>
    new LM('openai/gpt-4o-mini', {
      provider: new OpenAIProvider({
        apiKey: 'sk-test',
        baseURL: upstream.url,
        timeoutMs: 5000,
        maxRetries: 0,
      }),
      cacheStore,
    });

  beforeAll(async () => {
    upstream = await startFakeOpenAI();
  });
  afterAll(() => upstream.close());
  beforeEach(() => upstream.reset());

  it('returns all four fields and usage', async () => {
    upstream.script({
      text:
        '[[ ## reasoning ## ]]\nPlants use light.\n\n[[ ## answer ## ]]\nPhotosynthesis turns light into sugar.\n\n' +
        '[[ ## key_concepts ## ]]\nchlorophyll, glucose\n\n[[ ## question_type ## ]]\nfactual\n\n[[ ## completed ## ]]',
      usage: { prompt_tokens: 120, completion_tokens: 30, total_tokens: 150 },
    });
    const pred = await settings.context({ lm: lmFor(), trackUsage: true }, () =>
      new QAProgram().call({ question: 'What is photosynthesis?' }),
    );
    expect(pred.toDict()).toEqual({
      reasoning: 'Plants use light.',
      answer: 'Photosynthesis turns light into sugar.',
      key_concepts: 'chlorophyll, glucose',
      question_type: 'factual',
    });
    expect(pred.getLmUsage()).toEqual({
      'openai/gpt-4o-mini': expect.objectContaining({
        prompt_tokens: 120,
        completion_tokens: 30,
        total_tokens: 150,
      }),
    });
    const body = upstream.requests[0].body;
    expect(body.model).toBe('gpt-4o-mini');
    expect(body.messages[1].content).toContain('[[ ## question ## ]]\nWhat is photosynthesis?');
    expect(body).not.toHaveProperty('temperature');
  });

  it('falls back to the JSON adapter with structured outputs and sums the usage of both calls', async () => {
    upstream.script(
      {
        text: 'not the expected format',
        usage: { prompt_tokens: 100, completion_tokens: 10, total_tokens: 110 },
      },
      {
        text: JSON.stringify({ reasoning: 'r', answer: 'a', key_concepts: 'k', question_type: 'factual' }),
        usage: { prompt_tokens: 200, completion_tokens: 20, total_tokens: 220 },
      },
    );
    const pred = await settings.context({ lm: lmFor(), trackUsage: true }, () =>
      new QAProgram().call({ question: 'Q?' }),
    );
    expect(pred.answer).toBe('a');
    expect(upstream.requests[1].body.response_format).toMatchObject({
      type: 'json_schema',
      json_schema: { name: 'DSPyProgramOutputs', strict: true },
    });
    expect(pred.getLmUsage()?.['openai/gpt-4o-mini']).toMatchObject({
      prompt_tokens: 300,
      completion_tokens: 30,
    });
  });

  it('serves the second identical call from the cache without an upstream request', async () => {
    const lm = lmFor(new MemoryLMCache());
    const ask = () =>
      settings.context({ lm, trackUsage: true }, () =>
        new QAProgram().call({ question: 'Why is the sky blue?' }),
      );
    const first = await ask();
    const second = await ask();
    expect(upstream.calls).toBe(1);
    expect(second.toDict()).toEqual(first.toDict());
    expect(second.getLmUsage()).toEqual({});
  });

  it('aborts the upstream request when the caller cancels', async () => {
    upstream.script({ type: 'hang' });
    const controller = new AbortController();
    const pending = settings.context({ lm: lmFor() }, () =>
      new QAProgram().call({ question: 'slow?' }, { signal: controller.signal }),
    );
    await new Promise((r) => setTimeout(r, 50));
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'LMAbortedError' });
    await expect(upstream.requests[0].closed).resolves.toBe('aborted');
  });
});
