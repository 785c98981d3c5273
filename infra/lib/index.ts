// Public API of the jobrunner CDK library.
export * from './alarms';
export * from './alert';
export * from './buffer';
export * from './config';
export * from './dashboard';
export * from './function';
export * from './jobrunner';
export * from './launch';
export * from './scale';
export * from './state';
export * from './tracker';
