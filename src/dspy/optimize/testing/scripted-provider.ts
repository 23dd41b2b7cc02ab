/**
 * A scripted `LMProvider` for optimizer tests: it reads the output fields a ChatAdapter prompt asks for and
 * answers them through a callback, recording every request. No network.
 */
import type { ChatMessage, LMCallOptions, LMProvider, LMRequest, LMStreamChunk } from '../../clients/types';
import { LMAbortedError } from '../../utils/exceptions';

export interface ScriptedRequest {
  index: number;
  request: LMRequest;
  system: string;
  /** The last user message (the main request). */
  user: string;
  /** Output field names asked for, in order. */
  outputs: string[];
  /** The instructions of the signature (the text after "your objective is:"). */
  instructions: string;
  /** Demo turns (user/assistant pairs) before the main request. */
  demos: number;
  /** An input field's value from the main request. */
  input(name: string): string | null;
}

export type ScriptedAnswer = Record<string, string | undefined> | string | Error;

export class ScriptedProvider implements LMProvider {
  readonly requests: ScriptedRequest[] = [];

  constructor(private readonly answer: (req: ScriptedRequest) => ScriptedAnswer | Promise<ScriptedAnswer>) {}

  get calls(): number {
    return this.requests.length;
  }

  static parse(request: LMRequest, index: number): ScriptedRequest {
    const messages: ChatMessage[] = request.messages;
    const system = messages[0]?.content ?? '';
    const user = messages[messages.length - 1]?.content ?? '';
    const reminder = /Respond with the corresponding output fields[^\n]*/.exec(user)?.[0] ?? '';
    const outputs = [...reminder.matchAll(/`\[\[ ## (\w+) ## \]\]`/g)]
      .map((m) => m[1])
      .filter((n) => n !== 'completed');
    const instructions = (/your objective is: \n([\s\S]*)$/.exec(system)?.[1] ?? '')
      .split('\n')
      .map((l) => l.replace(/^ {8}/, ''))
      .join('\n');
    return {
      index,
      request,
      system,
      user,
      outputs,
      instructions,
      demos: Math.max(0, (messages.length - 2) / 2),
      input(name: string) {
        const m = new RegExp(
          `\\[\\[ ## ${name} ## \\]\\]\\n([\\s\\S]*?)(?=\\n\\n\\[\\[ ## |\\n\\nRespond with|$)`,
        ).exec(user);
        return m ? m[1] : null;
      },
    };
  }

  async complete(request: LMRequest, options?: LMCallOptions) {
    if (options?.signal?.aborted) throw new LMAbortedError('aborted');
    const parsed = ScriptedProvider.parse(request, this.requests.length);
    this.requests.push(parsed);
    const answer = await this.answer(parsed);
    if (answer instanceof Error) throw answer;
    const text =
      typeof answer === 'string'
        ? answer
        : [
            ...parsed.outputs.map((f) => `[[ ## ${f} ## ]]\n${answer[f] ?? `Some ${f}.`}`),
            '[[ ## completed ## ]]',
          ].join('\n\n');
    const promptTokens = Math.ceil(request.messages.map((m) => m.content).join('\n').length / 4);
    const completionTokens = Math.ceil(text.length / 4);
    return {
      outputs: [text],
      usage: {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
      },
      responseModel: request.model,
      finishReasons: ['stop'],
    };
  }

  async *stream(request: LMRequest, options?: LMCallOptions): AsyncIterable<LMStreamChunk> {
    const response = await this.complete(request, options);
    yield { text: response.outputs[0], usage: response.usage };
  }
}
