import { Inject, Injectable, Logger } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { Observable } from 'rxjs';
import { createStreamListeners, LM, settings, StreamRouter, UsageTracker } from '../dspy';
import type { Prediction, Usage } from '../dspy';
import { LMUnavailableError } from '../common/errors/service-errors';
import { describeError } from '../common/errors/error-table';
import { lmConfig } from '../config/lm.config';
import { programConfig } from '../config/program.config';
import { MetricsService } from '../metrics/metrics.service';
import { costOf, ModelPrice, parsePrices } from './cost';
import { withDeadline } from './deadline';
import type { ProgramStatus, ProgramStatusProvider } from './program-status';
import { LM_CLIENT, lmProblem, QA_PROGRAM } from './program.providers';
import type { QAProgram } from './qa.program';

type Route = 'predict' | 'stream' | 'batch';

export interface PredictResult {
  answer: string;
  reasoning: string;
  key_concepts: string;
  question_type: string;
  usage: Record<string, Usage>;
  /** Usage the cache hits of this request would have cost (not billed); `{}` on a full miss. */
  saved_usage: Record<string, Usage>;
  latency_seconds: number;
  cached: boolean;
  request_id: string | null;
  cost_usd: number | null;
}

export interface BatchItemResult extends Partial<Omit<PredictResult, 'answer'>> {
  question: string;
  answer: string | null;
  error: { code: string; detail: string } | null;
}

export type StreamEvent =
  { type: 'token'; field: string; content: string } | ({ type: 'complete' } & PredictResult);

export interface RunOptions {
  signal?: AbortSignal;
  requestId?: string | null;
  /** Skip cache reads and store the fresh answer (`Cache-Control: no-cache`). */
  refreshCache?: boolean;
}

const PREDICT_NAME = 'predict.predict';

/** Serves the QA program: one request = one program call with its own usage tracker, signal and listeners. */
@Injectable()
export class ProgramService implements ProgramStatusProvider {
  private readonly logger = new Logger(ProgramService.name);
  private readonly prices: Record<string, ModelPrice>;
  /** Re-read per request: a local model can become available (downloaded) or fail after startup. */
  private get problem(): string | null {
    return lmProblem(this.lmCfg);
  }

  constructor(
    @Inject(LM_CLIENT) private readonly lm: LM,
    @Inject(QA_PROGRAM) private readonly program: QAProgram,
    @Inject(lmConfig.KEY) private readonly lmCfg: ConfigType<typeof lmConfig>,
    @Inject(programConfig.KEY) private readonly cfg: ConfigType<typeof programConfig>,
    private readonly metrics: MetricsService,
  ) {
    this.prices = parsePrices(lmCfg.pricesJson);
  }

  status(): ProgramStatus {
    return {
      model: this.lmCfg.model,
      optimized: !!this.cfg.statePath,
      streaming: this.cfg.enableStreaming,
      lmConfigured: this.problem === null,
      lmProblem: this.problem,
    };
  }

  /** Fails fast, before any upstream call or response header, when no LM is configured. */
  assertAvailable(): void {
    if (this.problem) throw new LMUnavailableError(this.problem);
  }

  async predict(
    question: string,
    options: RunOptions = {},
    route: Route = 'predict',
  ): Promise<PredictResult> {
    this.assertAvailable();
    const started = process.hrtime.bigint();
    const tracker = new UsageTracker();
    try {
      const prediction = await this.run(question, options, tracker);
      const result = this.result(prediction, tracker, started, options.requestId ?? null);
      this.metrics.recordPrediction({
        route,
        latencySeconds: result.latency_seconds,
        usage: tracker.totals(),
        costUsd: result.cost_usd,
        cached: result.cached,
      });
      return result;
    } catch (error) {
      this.recordFailure(route, error, tracker, options.signal);
      throw error;
    }
  }

  /**
   * A failed or abandoned prediction. Its billed tokens still count (calls that finished before it failed, and
   * the estimate for a stream cut short); a client that left is not a service error and does not move the error
   * rate.
   */
  private recordFailure(route: Route, error: unknown, tracker: UsageTracker, signal?: AbortSignal): void {
    const billed = tracker.totals();
    this.metrics.recordUsage(billed, costOf(billed, this.prices));
    const { code, status } = describeError(error);
    if (signal?.aborted && code === 'client_closed_request') return;
    this.metrics.recordError({ route, code, model: this.lm.model });
    // The error filter logs failures of ordinary responses; a stream that already answered 200 ends with an
    // error event the filter never sees. Code and status only: the error's text may quote the model's output.
    if (route === 'stream') this.logger.warn(`Stream failed: ${code} (${status})`);
  }

  /**
   * `token` events for the configured fields as the LM streams them, then `complete`. Unsubscribing (the client
   * left) aborts the upstream call. Listeners are created per request: DSPy's shared-listener bug cannot occur.
   */
  stream(question: string, options: RunOptions = {}): Observable<StreamEvent> {
    this.assertAvailable();
    return new Observable<StreamEvent>((subscriber) => {
      const controller = new AbortController();
      const onAbort = () => controller.abort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const router = new StreamRouter(
        createStreamListeners(
          this.cfg.streamFields.map((f) => ({ signatureFieldName: f, predictName: PREDICT_NAME })),
        ),
      );
      const emit = (responses: { signatureFieldName: string; chunk: string }[]) => {
        for (const r of responses) {
          if (r.chunk) subscriber.next({ type: 'token', field: r.signatureFieldName, content: r.chunk });
        }
      };
      const started = process.hrtime.bigint();
      const tracker = new UsageTracker();
      this.metrics.streamOpened();
      this.run(question, { ...options, signal: controller.signal }, tracker, ({ adapter, text }) =>
        emit(
          router.receive(text, {
            predictName: PREDICT_NAME,
            adapter: adapter === 'JSONAdapter' ? 'json' : 'chat',
          }),
        ),
      )
        .then((prediction) => {
          emit(router.flush());
          const result = this.result(prediction, tracker, started, options.requestId ?? null);
          this.metrics.recordPrediction({
            route: 'stream',
            latencySeconds: result.latency_seconds,
            usage: tracker.totals(),
            costUsd: result.cost_usd,
            cached: result.cached,
          });
          subscriber.next({ type: 'complete', ...result });
          subscriber.complete();
        })
        .catch((error: unknown) => {
          this.recordFailure('stream', error, tracker, controller.signal);
          subscriber.error(error);
        })
        .finally(() => this.metrics.streamClosed());
      return () => {
        options.signal?.removeEventListener('abort', onAbort);
        controller.abort();
      };
    });
  }

  /** Answers every question in input order; items fail independently; at most BATCH_CONCURRENCY at once. */
  async batch(questions: string[], options: RunOptions = {}): Promise<BatchItemResult[]> {
    this.assertAvailable();
    return mapWithConcurrency(
      questions,
      this.cfg.batchConcurrency,
      async (question): Promise<BatchItemResult> => {
        if (options.signal?.aborted)
          return {
            question,
            answer: null,
            error: { code: 'client_closed_request', detail: 'The client disconnected before this item ran.' },
          };
        try {
          const { request_id: _id, ...result } = await this.predict(
            question,
            { signal: options.signal, refreshCache: options.refreshCache },
            'batch',
          );
          return { question, ...result, error: null };
        } catch (error) {
          const { code, detail } = describeError(error);
          return { question, answer: null, error: { code, detail } };
        }
      },
    );
  }

  private async run(
    question: string,
    options: RunOptions,
    tracker: UsageTracker,
    onChunk?: (event: { adapter: string; text: string }) => void,
  ): Promise<Prediction> {
    const stream = onChunk
      ? {
          sink: ({ adapter, chunk }: { adapter: string; chunk: { text: string } }) =>
            onChunk({ adapter, text: chunk.text }),
        }
      : undefined;
    // Reliability (issue 7): one deadline over every upstream attempt of this request (or batch item).
    return withDeadline(this.lmCfg.requestDeadlineMs, options.signal, (signal) =>
      settings.runWith(
        {
          overrides: { lm: this.lm, trackUsage: false },
          usageTracker: tracker,
          signal,
          stream,
          refreshCache: options.refreshCache,
          // A hit replays through the same listeners, so stream clients see tokens either way (DSPy sends none).
          replayCachedStreams: true,
        },
        () => this.program.call({ question }),
      ),
    );
  }

  private result(
    prediction: Prediction,
    tracker: UsageTracker,
    started: bigint,
    requestId: string | null,
  ): PredictResult {
    const billed = tracker.totals();
    return {
      answer: String(prediction.answer ?? ''),
      reasoning: String(prediction.reasoning ?? ''),
      key_concepts: String(prediction.key_concepts ?? ''),
      question_type: String(prediction.question_type ?? ''),
      usage: this.lmCfg.trackUsage ? billed : {},
      saved_usage: this.lmCfg.trackUsage ? tracker.saved() : {},
      latency_seconds: Math.round(Number(process.hrtime.bigint() - started) / 1e6) / 1000,
      cached: tracker.calls > 0 && tracker.cacheHits === tracker.calls,
      request_id: requestId,
      cost_usd: costOf(billed, this.prices),
    };
  }
}

/** Promise.all with a concurrency bound, results in input order. */
export async function mapWithConcurrency<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
