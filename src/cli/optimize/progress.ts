/**
 * Renders optimizer progress: one redrawn bar line on a terminal, plain log lines otherwise (CI, pipes, files).
 */
import { averageMetricLine, type ProgressEvent, type ProgressReporter } from '../../dspy';
import type { OutputStream } from './io';

function bar(done: number, total: number, width = 24): string {
  const filled = total > 0 ? Math.round((done / total) * width) : 0;
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

function params(p: Record<string, number>): string {
  return Object.entries(p)
    .map(([k, v]) => `${k.replace(/^(\d+)_predictor_/, 'p$1.')}=${v}`)
    .join(' ');
}

/** The line for a finished trial. */
function trialLine(e: Extract<ProgressEvent, { type: 'trial' }>): string {
  const what =
    e.kind === 'default'
      ? 'Default program (full evaluation)'
      : e.kind === 'full'
        ? `Full evaluation after trial ${e.n}/${e.total}`
        : `Trial ${e.n}/${e.total}${e.full ? '' : ' (minibatch)'}`;
  const error = e.error ? ` [failed: ${e.error}]` : '';
  return `${what}: score ${e.score.toFixed(2)} (${params(e.params)}); best full score ${e.best.toFixed(2)}${error}`;
}

export function createProgressRenderer(stream: OutputStream): ProgressReporter & { finish(): void } {
  const tty = !!stream.isTTY;
  let barShown = false;
  let best: number | null = null;

  const clear = () => {
    if (barShown) stream.write('\r\x1b[2K');
    barShown = false;
  };
  const line = (text: string) => {
    clear();
    stream.write(`${text}\n`);
  };
  const drawBar = (label: string, done: number, total: number, detail: string) => {
    if (!tty) return;
    const bestText = best === null ? '' : `  (best ${best.toFixed(2)})`;
    const text = `${bar(done, total)} ${label} ${detail}${bestText}`;
    const width = (stream.columns ?? 120) - 1;
    stream.write(`\r\x1b[2K${text.length > width ? text.slice(0, width) : text}`);
    barShown = true;
  };

  const reporter = (e: ProgressEvent) => {
    switch (e.type) {
      case 'plan':
        line('MIPROv2 run settings:');
        for (const l of e.lines) line(`  ${l}`);
        if (e.estimatedLmCalls !== null)
          line(`  estimated LM calls (before cache hits): at most ${e.estimatedLmCalls}`);
        break;
      case 'warning':
        line(`warning: ${e.message}`);
        break;
      case 'phase':
        line(`==> ${e.message}`);
        break;
      case 'bootstrap:set':
        if (tty) drawBar('bootstrapping demo sets', e.index, e.total, `${e.index}/${e.total}`);
        else line(`Bootstrapped demo set ${e.index}/${e.total} (${e.demos} demos)`);
        break;
      case 'propose:summary':
        if (e.summary !== null) line(`Dataset summary: ${e.summary}`);
        break;
      case 'propose:instruction':
        line(
          `Proposed instruction ${e.index} (predictor ${e.predictor}, tip ${e.tip ?? 'none'}): ${e.instruction}` +
            (e.index === 0 ? ' [replaced by the original instruction, as DSPy does]' : ''),
        );
        break;
      case 'eval:start':
        drawBar(e.label, 0, e.total, '');
        break;
      case 'eval:progress':
        drawBar(
          e.label,
          e.done,
          e.total,
          averageMetricLine(e.sum, e.done) + (e.errors ? `, ${e.errors} errors` : ''),
        );
        break;
      case 'eval:done':
        clear();
        break;
      case 'trial':
        best = e.best;
        line(trialLine(e));
        break;
      case 'best':
        line(`New best full score: ${e.score.toFixed(2)} (${params(e.params)})`);
        break;
      case 'stopped':
        line(`Stopped early (${e.reason}): ${e.message}`);
        break;
      case 'done':
        clear();
        break;
    }
  };
  return Object.assign(reporter, { finish: clear });
}
