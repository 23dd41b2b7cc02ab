/**
 * The two floors of `npm run bench`: a bare NestJS 11 app (Express, default JSON body parser, no logger) with
 *   POST /constant  -> a constant JSON object
 *   POST /upstream  -> one chat completion through the same `openai` SDK and HTTP client the service uses
 *                      (undici's fetch over a pooled keep-alive Agent), returning its text.
 * Plain JS with the decorators applied by hand, so it needs no build. Env: PORT, OPENAI_BASE_URL.
 */
'use strict';
require('reflect-metadata');
const { Body, Controller, HttpCode, Module, Post } = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const OpenAI = require('openai').default;

const undici = require('undici');

// The same HTTP client as the service's OpenAIProvider: undici's fetch over one pooled keep-alive Agent.
const client = new OpenAI({
  apiKey: 'bench',
  baseURL: process.env.OPENAI_BASE_URL,
  maxRetries: 0,
  fetch: undici.fetch,
  fetchOptions: { dispatcher: new undici.Agent({ connect: { timeout: 10_000 }, headersTimeout: 0, bodyTimeout: 0 }) },
  logLevel: 'off',
});

class FloorController {
  constant() {
    return { answer: 'constant' };
  }
  async upstream(body) {
    const completion = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: String(body?.question ?? '') }],
    });
    return { answer: completion.choices[0]?.message?.content ?? '' };
  }
}
const method = (name) => Object.getOwnPropertyDescriptor(FloorController.prototype, name);
Reflect.decorate([Post('constant'), HttpCode(200)], FloorController.prototype, 'constant', method('constant'));
Reflect.decorate([Post('upstream'), HttpCode(200)], FloorController.prototype, 'upstream', method('upstream'));
Body()(FloorController.prototype, 'upstream', 0);
Reflect.decorate([Controller()], FloorController);

class FloorModule {}
Reflect.decorate([Module({ controllers: [FloorController] })], FloorModule);

NestFactory.create(FloorModule, { logger: false })
  .then((app) => app.listen(Number(process.env.PORT), '127.0.0.1'))
  .catch((error) => {
    console.error(error);
    process.exit(1);
  });
