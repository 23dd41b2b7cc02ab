/** The final report of an optimize run: what was chosen, what it scored, and what it cost. */
import type { Demo, Module, UsageSnapshot } from '../../dspy';
import { namedPredicts } from '../../dspy';

export interface PredictorChoice {
  instruction: string;
  demos: Record<string, unknown>[];
}

export interface OptimizeReport {
  optimizer: 'mipro' | 'bootstrap' | 'labeled';
  auto: string | null;
  seed: number;
  metric: string;
  model: string;
  trainset: { file: string; examples: number; used: number };
  valset: { file: string | null; examples: number; used: number };
  /** The unmodified program's score on the validation examples, 0–100. */
  baselineScore: number | null;
  /** The written program's score on the same examples, 0–100. */
  optimizedScore: number | null;
  /** Per predictor name. */
  chosen: Record<string, PredictorChoice>;
  /** Search trials run (MIPROv2), the default program's evaluation not counted. */
  trials: number | null;
  lmCalls: number;
  promptLmCalls: number;
  taskLmCalls: number;
  failedLmCalls: number;
  tokens: { prompt: number; completion: number; total: number };
  costUsd: number | null;
  seconds: number;
  out: string | null;
  stoppedReason: 'budget' | 'abort' | 'error' | null;
  note: string | null;
}

function demoDict(demo: Demo): Record<string, unknown> {
  return typeof (demo as { toDict?: unknown }).toDict === 'function'
    ? (demo as { toDict(): Record<string, unknown> }).toDict()
    : { ...(demo as Record<string, unknown>) };
}

export function chosenOf(program: Module): Record<string, PredictorChoice> {
  return Object.fromEntries(
    namedPredicts(program).map(([name, p]) => [
      name,
      { instruction: p.signature.instructions, demos: p.demos.map(demoDict) },
    ]),
  );
}

export function usageFields(usage: UsageSnapshot) {
  return {
    lmCalls: usage.lmCalls,
    promptLmCalls: usage.promptLmCalls,
    taskLmCalls: usage.taskLmCalls,
    failedLmCalls: usage.failedLmCalls,
    tokens: { prompt: usage.promptTokens, completion: usage.completionTokens, total: usage.totalTokens },
    costUsd: usage.usd,
  };
}

const score = (s: number | null) => (s === null ? 'n/a' : s.toFixed(2));

function clip(text: string, max = 100): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

export function formatReport(r: OptimizeReport): string {
  const name = { mipro: 'MIPROv2', bootstrap: 'BootstrapFewShot', labeled: 'LabeledFewShot' }[r.optimizer];
  const rows: [string, string][] = [
    ['optimizer', `${name}${r.auto ? ` (auto=${r.auto})` : ''}, seed ${r.seed}, metric ${r.metric}`],
    ['model', r.model],
    [
      'data',
      `train ${r.trainset.used} of ${r.trainset.examples} (${r.trainset.file}); ` +
        `validation ${r.valset.used}${r.valset.file ? ` of ${r.valset.examples} (${r.valset.file})` : ' (from the trainset)'}`,
    ],
    ['baseline score', score(r.baselineScore)],
    ['optimized score', score(r.optimizedScore)],
  ];
  if (r.trials !== null) rows.push(['trials', String(r.trials)]);
  for (const [predictor, choice] of Object.entries(r.chosen)) {
    rows.push([`instruction (${predictor})`, clip(choice.instruction, 200)]);
    const augmented = choice.demos.filter((d) => d.augmented === true).length;
    rows.push([
      `demos (${predictor})`,
      `${choice.demos.length}${choice.demos.length ? ` (${augmented} bootstrapped, ${choice.demos.length - augmented} labeled)` : ''}`,
    ]);
    choice.demos.forEach((d, i) =>
      rows.push([`  demo ${i + 1}`, clip(String(Object.values(d).find((v) => typeof v === 'string') ?? ''))]),
    );
  }
  rows.push(
    [
      'LM calls',
      `${r.lmCalls} (prompt model ${r.promptLmCalls}, task model ${r.taskLmCalls}${r.failedLmCalls ? `, ${r.failedLmCalls} failed` : ''})`,
    ],
    ['tokens', `${r.tokens.total} (${r.tokens.prompt} prompt, ${r.tokens.completion} completion)`],
    [
      'cost',
      r.costUsd === null
        ? 'unknown (no price for the model; see LM_PRICES_JSON)'
        : `$${r.costUsd.toFixed(6)}`,
    ],
    ['time', `${r.seconds.toFixed(2)} s`],
    ['saved', r.out ?? 'nothing written'],
  );
  if (r.note) rows.push(['note', r.note]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return ['Optimization report', ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)].join('\n');
}
