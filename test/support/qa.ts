/**
 * Questions and completions for the QA program. Every test asks its own question: the LM cache is keyed by the
 * prompt and outlives an app (and, with a disk tier, a run), so a repeated question would skip the upstream.
 */
import { randomUUID } from 'node:crypto';

export interface QAFields {
  reasoning: string;
  answer: string;
  key_concepts: string;
  question_type: string;
}

const RUN = randomUUID().slice(0, 8);
let counter = 0;

export function uniqueQuestion(topic = 'What is a unique question'): string {
  counter += 1;
  return `${topic} (#${counter}, run ${RUN})?`;
}

/** Distinct, recognisable output fields. */
export function qaFields(tag: string): QAFields {
  return {
    reasoning: `Reasoning about ${tag} step by step.`,
    answer: `The answer about ${tag} is forty two.`,
    key_concepts: `${tag}, concepts`,
    question_type: 'factual',
  };
}

/** What a well-behaved model answers to the ChatAdapter prompt. */
export function chatCompletion(fields: QAFields): string {
  return (
    `[[ ## reasoning ## ]]\n${fields.reasoning}\n\n[[ ## answer ## ]]\n${fields.answer}\n\n` +
    `[[ ## key_concepts ## ]]\n${fields.key_concepts}\n\n[[ ## question_type ## ]]\n${fields.question_type}\n\n` +
    '[[ ## completed ## ]]'
  );
}

/** The question of a ChatAdapter or JSONAdapter prompt, from the last user message of a chat completion body. */
export function questionOf(body: any): string | null {
  const messages: any[] = Array.isArray(body?.messages) ? body.messages : [];
  const user = [...messages].reverse().find((m) => m?.role === 'user');
  const match = /\[\[ ## question ## \]\]\n([\s\S]*?)\n\nRespond with/.exec(String(user?.content ?? ''));
  return match ? match[1] : null;
}

export const PREDICT_FIELDS = [
  'answer',
  'reasoning',
  'key_concepts',
  'question_type',
  'usage',
  'saved_usage',
  'latency_seconds',
  'cached',
  'request_id',
  'cost_usd',
].sort();

/** The start of a ChatAdapter completion, far enough into `answer` for the listener to release tokens. */
export const PARTIAL_ANSWER_CHUNKS = [
  '[[ ## reasoning ## ]]\nBecause.\n\n',
  '[[ ## answer ## ]]\n',
  'The ',
  'answer ',
  'is ',
  'cut ',
  'short ',
];
