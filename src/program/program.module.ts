import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { lmConfig } from '../config/lm.config';
import { reliabilityConfig } from '../config/reliability.config';
import { programConfig } from '../config/program.config';
import { BatchBodyPipe } from './dto/batch-body.pipe';
import { PROGRAM_STATUS } from './program-status';
import { AdmissionService } from './admission.service';
import { ProgramController } from './program.controller';
import { lmClientProvider, qaProgramProvider } from './program.providers';
import { ProgramService } from './program.service';

@Module({
  imports: [
    ConfigModule.forFeature(lmConfig),
    ConfigModule.forFeature(programConfig),
    ConfigModule.forFeature(reliabilityConfig),
  ],
  controllers: [ProgramController],
  providers: [
    lmClientProvider,
    qaProgramProvider,
    ProgramService,
    AdmissionService,
    BatchBodyPipe,
    { provide: PROGRAM_STATUS, useExisting: ProgramService },
  ],
  exports: [ProgramService, AdmissionService, PROGRAM_STATUS],
})
export class ProgramModule {}
