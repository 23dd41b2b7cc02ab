import request from 'supertest';
import { createTestApp, TestApp } from './support/test-app';

describe('service smoke', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  it('answers /predict through the fake upstream', async () => {
    const res = await request(t.server).post('/predict').send({ question: 'What is AI?' }).expect(200);
    expect(res.body).toMatchObject({ cached: false, request_id: expect.any(String) });
    expect(typeof res.body.answer).toBe('string');
    expect(res.headers['x-request-id']).toBe(res.body.request_id);
  });

  it('streams /predict/stream', async () => {
    const res = await request(t.server)
      .post('/predict/stream')
      .send({ question: 'Explain gravity' })
      .expect(200);
    expect(res.headers['content-type']).toMatch(/text\/event-stream/);
    const events = res.text
      .split('\n\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => l.slice(6));
    expect(events.at(-1)).toBe('[DONE]');
    const parsed = events.slice(0, -1).map((e) => JSON.parse(e));
    expect(parsed.filter((e) => e.type === 'token').length).toBeGreaterThan(0);
    const complete = parsed.find((e) => e.type === 'complete');
    // DSPy streams the field's trailing blank line with the text; the final answer is stripped.
    expect(
      parsed
        .filter((e) => e.type === 'token')
        .map((e) => e.content)
        .join('')
        .trim(),
    ).toBe(complete.answer);
  });
});
