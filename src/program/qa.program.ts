import { ChainOfThought, Module, Prediction, Signature } from '../dspy';

/** The seed's `QASignature`: answer a question with detailed reasoning, plus key concepts and its type. */
export const QASignature = Signature.define({
  name: 'QASignature',
  instructions: 'Answer a question with detailed reasoning.',
  inputs: {
    question: { desc: 'The question to answer' },
  },
  outputs: {
    answer: { desc: 'A clear, comprehensive answer' },
    key_concepts: { desc: 'Key concepts used in the answer' },
    question_type: { desc: 'Type of question: factual, opinion, analytical' },
  },
});

export interface QAOutput {
  reasoning: string;
  answer: string;
  key_concepts: string;
  question_type: string;
}

/** The seed's `QAProgram`; its single predictor is named `predict.predict`, as in Python DSPy. */
export class QAProgram extends Module {
  readonly predict = new ChainOfThought(QASignature);

  forward({ question, ...rest }: { question?: unknown } & Record<string, unknown>): Promise<Prediction> {
    return this.predict.call({ question, ...rest });
  }
}
