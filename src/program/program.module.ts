import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { lmConfig } from '../config/lm.config';
import { programConfig } from '../config/program.config';
import { BatchBodyPipe } from './dto/batch-body.pipe';
import { PROGRAM_STATUS } from './program-status';
import { ProgramController } from './program.controller';
import { lmClientProvider, qaProgramProvider } from './program.providers';
import { ProgramService } from './program.service';

@Module({
  imports: [ConfigModule.forFeature(lmConfig), ConfigModule.forFeature(programConfig)],
  controllers: [ProgramController],
  providers: [
    lmClientProvider,
    qaProgramProvider,
    ProgramService,
    BatchBodyPipe,
    { provide: PROGRAM_STATUS, useExisting: ProgramService },
  ],
  exports: [ProgramService, PROGRAM_STATUS],
})
export class ProgramModule {}
