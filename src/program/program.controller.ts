import { Body, Controller, Get, HttpCode, Inject, Post, Query, Req, Res } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { ApiBody, ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { StreamingDisabledError } from '../common/errors/service-errors';
import { requestIdOf } from '../common/logging/logger.config';
import { programConfig } from '../config/program.config';
import { BatchBodyPipe } from './dto/batch-body.pipe';
import { PredictRequestDto } from './dto/predict-request.dto';
import { BatchResponseDto, PredictResponseDto } from './dto/predict-response.dto';
import { ApiProblemResponses } from './dto/problem.dto';
import { AdmissionService } from './admission.service';
import { ProgramService } from './program.service';
import { clientSignal, writeSse } from './sse';

@ApiTags('predict')
@Controller()
export class ProgramController {
  constructor(
    private readonly program: ProgramService,
    private readonly admission: AdmissionService,
    @Inject(programConfig.KEY) private readonly cfg: ConfigType<typeof programConfig>,
  ) {}

  @Post('predict')
  @HttpCode(200)
  @ApiOperation({ summary: 'Answer a question with reasoning, key concepts and question type' })
  @ApiOkResponse({ type: PredictResponseDto })
  @ApiProblemResponses(400, 401, 413, 415, 422, 429, 502, 503, 504)
  async predict(
    @Body() body: PredictRequestDto,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ) {
    const signal = clientSignal(res);
    const release = await this.admission.acquire(signal);
    try {
      return await this.program.predict(body.question, {
        signal,
        requestId: requestIdOf(req),
        refreshCache: wantsFresh(req),
      });
    } finally {
      release();
    }
  }

  @Post('predict/stream')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Stream the answer as Server-Sent Events',
    description:
      '`data: {"type":"token","field":"answer","content":…}` events, then `data: {"type":"complete", …the /predict fields}`, ' +
      'then `data: [DONE]`. An error after the stream began is `data: {"type":"error","code":…,"detail":…}` then `[DONE]`.',
  })
  @ApiProduces('text/event-stream')
  @ApiOkResponse({
    description: 'An SSE stream',
    content: { 'text/event-stream': { schema: { type: 'string' } } },
  })
  @ApiProblemResponses(400, 401, 404, 413, 415, 422, 429, 502, 503, 504)
  stream(@Body() body: PredictRequestDto, @Req() req: Request, @Res() res: Response): Promise<void> {
    return this.startStream(body.question, req, res);
  }

  @Get('predict/stream')
  @ApiOperation({ summary: 'The same stream for a browser EventSource: GET /predict/stream?question=…' })
  @ApiProduces('text/event-stream')
  @ApiOkResponse({
    description: 'An SSE stream',
    content: { 'text/event-stream': { schema: { type: 'string' } } },
  })
  @ApiProblemResponses(401, 404, 422, 429, 431, 502, 503, 504)
  streamGet(@Query() query: PredictRequestDto, @Req() req: Request, @Res() res: Response): Promise<void> {
    return this.startStream(query.question, req, res);
  }

  @Post('batch')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Answer several questions; items fail independently and come back in input order',
  })
  @ApiBody({ type: [PredictRequestDto] })
  @ApiOkResponse({ type: BatchResponseDto })
  @ApiProblemResponses(400, 401, 413, 415, 422, 429, 503)
  async batch(
    @Body(BatchBodyPipe) items: PredictRequestDto[],
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ) {
    const signal = clientSignal(res);
    // A batch takes one slot: BATCH_CONCURRENCY already bounds its own upstream calls.
    const release = await this.admission.acquire(signal);
    try {
      const results = await this.program.batch(
        items.map((i) => i.question),
        { signal, refreshCache: wantsFresh(req) },
      );
      return { results, count: results.length };
    } finally {
      release();
    }
  }

  private async startStream(question: string, req: Request, res: Response): Promise<void> {
    if (!this.cfg.enableStreaming) throw new StreamingDisabledError();
    const release = await this.admission.acquire(clientSignal(res));
    try {
      const events = this.program.stream(question, {
        requestId: requestIdOf(req),
        refreshCache: wantsFresh(req),
      });
      await writeSse(res, events, this.cfg.streamHeartbeatMs, this.admission.drainSignal);
    } finally {
      release();
    }
  }
}

/** `Cache-Control: no-cache` asks for a fresh answer (the cache is refreshed, not read). */
function wantsFresh(req: Request): boolean {
  return /(?:^|,)\s*no-cache\s*(?:,|$)/i.test(req.headers['cache-control'] ?? '');
}
