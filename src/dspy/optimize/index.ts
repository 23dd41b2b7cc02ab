/** The optimizers: Evaluate, LabeledFewShot, BootstrapFewShot and MIPROv2, with their building blocks. */
export * from './rng';
export * from './tpe';
export * from './concurrency';
export * from './budget';
export * from './metric';
export * from './progress';
export * from './program-utils';
export * from './evaluate';
export * from './labeled-few-shot';
export * from './bootstrap-few-shot';
export * from './demo-sets';
export * from './dataset-summary';
export * from './grounded-proposer';
export * from './mipro-settings';
export * from './mipro-v2';
