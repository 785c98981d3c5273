#!/usr/bin/env node
// The example app: `npx cdk deploy -c alertEmails=ops@example.com`.
//
// Context:
//   alertEmails   comma-separated emails subscribed to the alert topic (optional)
//   architecture  arm64 (default) or x86_64: the Lambda functions' CPU architecture
//   stackName     default JobRunnerExample
//
// cdk-nag's AwsSolutions pack runs on every synth; an unacknowledged finding fails it.

import { App, Validations } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks } from 'cdk-nag';
import { JobRunnerExampleStack } from '../lib/example-stack';

const app = new App();

const emails = String(app.node.tryGetContext('alertEmails') ?? '')
  .split(',')
  .map((e) => e.trim())
  .filter(Boolean);
const arch = String(app.node.tryGetContext('architecture') ?? 'arm64');
if (arch !== 'arm64' && arch !== 'x86_64') throw new Error(`context architecture: arm64 or x86_64, not '${arch}'`);

new JobRunnerExampleStack(app, 'JobRunnerExample', {
  stackName: app.node.tryGetContext('stackName') ?? 'JobRunnerExample',
  alertEmails: emails,
  architecture: arch === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64,
});

Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
