/**
 * DSPy `propose/dataset_summary_generator.py` (optimizers.md §1.5(a)): observations on the first batch of the
 * trainset, continued over later batches (at most 9 more calls, "COMPLETE" answers skipped), then summarised in
 * 2-3 sentences. The prompts are DSPy's, verbatim.
 */
import type { LM } from '../clients/lm';
import { Predict } from '../predict/predict';
import type { Example } from '../primitives/example';
import { Signature } from '../signatures/signature';
import { settings } from '../utils/settings';
import { examplesRepr } from './program-utils';

export const DatasetDescriptor = Signature.define({
  name: 'DatasetDescriptor',
  instructions:
    "Given several examples from a dataset please write observations about trends that hold for most or all of the samples. Some areas you may consider in your observations: topics, content, syntax, conciseness, etc. It will be useful to make an educated guess as to the nature of the task this dataset will enable. Don't be afraid to be creative",
  inputs: { examples: { desc: 'Sample data points from the dataset' } },
  outputs: { observations: { desc: 'Somethings that holds true for most or all of the data you observed' } },
});

export const DatasetDescriptorWithPriorObservations = Signature.define({
  name: 'DatasetDescriptorWithPriorObservations',
  instructions:
    "Given several examples from a dataset please write observations about trends that hold for most or all of the samples. I will also provide you with a few observations I have already made.  Please add your own observations or if you feel the observations are comprehensive say 'COMPLETE' Some areas you may consider in your observations: topics, content, syntax, conciceness, etc. It will be useful to make an educated guess as to the nature of the task this dataset will enable. Don't be afraid to be creative",
  inputs: {
    examples: { desc: 'Sample data points from the dataset' },
    prior_observations: { desc: 'Some prior observations I made about the data' },
  },
  outputs: {
    observations: {
      desc: 'Somethings that holds true for most or all of the data you observed or COMPLETE if you have nothing to add',
    },
  },
});

export const ObservationSummarizer = Signature.define({
  name: 'ObservationSummarizer',
  instructions:
    'Given a series of observations I have made about my dataset, please summarize them into a brief 2-3 sentence summary which highlights only the most important details.',
  inputs: { observations: { desc: 'Observations I have made about my dataset' } },
  outputs: {
    summary: {
      desc: 'Two to Three sentence summary of only the most significant highlights of my observations',
    },
  },
});

const STRIP_PREFIX = /^[*\s]*(([\p{L}\p{N}_'-]+\s+){0,4}[\p{L}\p{N}_'-]+):\s*/u;

/** DSPy `strip_prefix`: drop a leading label such as "Proposed Instruction:", then surrounding double quotes. */
export function stripPrefix(text: string): string {
  return text.replace(STRIP_PREFIX, '').replace(/^"+|"+$/g, '');
}

export interface DatasetSummaryOptions {
  viewDataBatchSize?: number;
  signal?: AbortSignal;
  /** Errors of the continuation calls that must not be swallowed (DSPy swallows all of them). */
  isFatal?: (error: unknown) => boolean;
}

/** DSPy `create_dataset_summary`. */
export async function createDatasetSummary(
  trainset: readonly Example[],
  promptLm: LM,
  options: DatasetSummaryOptions = {},
): Promise<string> {
  const batch = options.viewDataBatchSize ?? 10;
  const predict = (signature: Signature, inputs: Record<string, unknown>) =>
    settings.context({ lm: promptLm }, () =>
      new Predict(signature, { n: 1, temperature: 1.0 }).call(inputs, { signal: options.signal }),
    );

  const first = await predict(DatasetDescriptor, { examples: examplesRepr(trainset.slice(0, batch)) });
  let observations = String(first.get('observations') ?? '');
  let skips = 0;
  try {
    let calls = 0;
    for (let b = batch; b < trainset.length; b += batch) {
      calls++;
      if (calls >= 10) break;
      const output = await predict(DatasetDescriptorWithPriorObservations, {
        prior_observations: observations,
        examples: examplesRepr(trainset.slice(b, b + batch)),
      });
      const more = String(output.get('observations') ?? '');
      if (more.length >= 8 && more.slice(0, 8).toUpperCase() === 'COMPLETE') {
        skips++;
        if (skips >= 5) break;
        continue;
      }
      observations += more;
    }
  } catch (error) {
    // DSPy summarises what it has so far.
    if (options.isFatal?.(error)) throw error;
  }
  const summary = await predict(ObservationSummarizer, { observations });
  return stripPrefix(String(summary.get('summary') ?? ''));
}
