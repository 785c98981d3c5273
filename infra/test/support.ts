// Shared test helpers: apps that skip Rust bundling, the cdk.json feature flags, and a small
// evaluator that turns CloudFormation expressions into the values they would have once deployed.

import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { JobRunnerExampleStack } from '../lib/example-stack';

export const INFRA_DIR = path.resolve(__dirname, '..');
export const REPO_ROOT = path.resolve(INFRA_DIR, '..');

/** The feature flags `cdk synth` uses (cdk.json's context). */
export function cdkJsonContext(): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(INFRA_DIR, 'cdk.json'), 'utf8')).context;
}

/** An App like `cdk synth`'s, except that no stack is bundled (no Rust build in unit tests). */
export function testApp(extra: Record<string, unknown> = {}): App {
  return new App({ context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [], ...extra } });
}

export interface Example {
  readonly app: App;
  readonly stack: JobRunnerExampleStack;
  readonly template: Template;
  readonly json: Record<string, any>;
}

/** The example stack as `bin/app.ts` builds it (two alert emails, arm64). */
export function synthExample(app: App = testApp()): Example {
  const stack = new JobRunnerExampleStack(app, 'JobRunnerExample', {
    alertEmails: ['ops@example.com', 'oncall@example.com'],
    architecture: lambda.Architecture.ARM_64,
  });
  const template = Template.fromStack(stack);
  return { app, stack, template, json: template.toJSON() };
}

/** All resources of a type, as [logicalId, resource]. */
export function resourcesOfType(json: Record<string, any>, type: string): [string, any][] {
  return Object.entries(json.Resources as Record<string, any>).filter(([, r]) => r.Type === type);
}

/** Every IAM policy statement of the template, with the logical ID of the role it is attached to. */
export function policyStatements(json: Record<string, any>): { roles: string[]; statement: any }[] {
  const out: { roles: string[]; statement: any }[] = [];
  for (const [, r] of resourcesOfType(json, 'AWS::IAM::Policy')) {
    const roles = (r.Properties.Roles ?? []).map((x: any) => x.Ref);
    for (const s of r.Properties.PolicyDocument.Statement) out.push({ roles, statement: s });
  }
  for (const [id, r] of resourcesOfType(json, 'AWS::IAM::Role')) {
    for (const p of r.Properties.Policies ?? []) {
      for (const s of p.PolicyDocument.Statement) out.push({ roles: [id], statement: s });
    }
  }
  return out;
}

export const asArray = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

/** Statements (of any role) that allow `action`. */
export function statementsWith(json: Record<string, any>, action: string): { roles: string[]; statement: any }[] {
  return policyStatements(json).filter(
    ({ statement }) => statement.Effect === 'Allow' && asArray<string>(statement.Action).includes(action),
  );
}

/** The logical ID of the role of a Lambda function whose environment has the given binary. */
export function functionRole(json: Record<string, any>, description: string): string {
  const fn = resourcesOfType(json, 'AWS::Lambda::Function').find(([, r]) =>
    String(r.Properties.Description ?? '').startsWith(description),
  );
  if (!fn) throw new Error(`no function described '${description}'`);
  return fn[1].Properties.Role['Fn::GetAtt'][0];
}

// ---------------------------------------------------------------------------------------------
// A CloudFormation evaluator for the values the config document references.

const ACCOUNT = '123456789012';
const REGION = 'eu-central-1';

/** What `Ref` / `Fn::GetAtt` return once deployed, by resource type (names from logical IDs). */
function deployedValue(json: Record<string, any>, logicalId: string, attribute?: string): string {
  const pseudo: Record<string, string> = {
    'AWS::AccountId': ACCOUNT,
    'AWS::Region': REGION,
    'AWS::Partition': 'aws',
    'AWS::URLSuffix': 'amazonaws.com',
    'AWS::StackName': 'JobRunnerExample',
  };
  if (!attribute && logicalId in pseudo) return pseudo[logicalId];
  const resource = json.Resources?.[logicalId];
  if (!resource) throw new Error(`reference to unknown resource ${logicalId}`);
  const name = `jr-${logicalId.toLowerCase().slice(0, 40)}`;
  const hex = createHash('sha256').update(logicalId).digest('hex').slice(0, 17);
  const key = `${resource.Type}${attribute ? `.${attribute}` : ''}`;
  const values: Record<string, string> = {
    'AWS::ECS::Cluster': name,
    'AWS::ECS::Cluster.Arn': `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/${name}`,
    'AWS::ECS::Service': `arn:aws:ecs:${REGION}:${ACCOUNT}:service/${name}/${name}`,
    'AWS::ECS::Service.Name': name,
    'AWS::ECS::TaskDefinition': `arn:aws:ecs:${REGION}:${ACCOUNT}:task-definition/${name}:1`,
    'AWS::S3::Bucket': name,
    'AWS::S3::Bucket.Arn': `arn:aws:s3:::${name}`,
    'AWS::SQS::Queue': `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${name}`,
    'AWS::SQS::Queue.Arn': `arn:aws:sqs:${REGION}:${ACCOUNT}:${name}`,
    'AWS::SQS::Queue.QueueName': name,
    'AWS::SNS::Topic': `arn:aws:sns:${REGION}:${ACCOUNT}:${name}`,
    'AWS::SNS::Topic.TopicArn': `arn:aws:sns:${REGION}:${ACCOUNT}:${name}`,
    'AWS::DynamoDB::Table': name,
    'AWS::DynamoDB::Table.Arn': `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${name}`,
    'AWS::EC2::Subnet': `subnet-${hex}`,
    'AWS::EC2::SecurityGroup.GroupId': `sg-${hex}`,
    'AWS::EC2::VPC': `vpc-${hex}`,
    'AWS::IAM::Role.Arn': `arn:aws:iam::${ACCOUNT}:role/${name}`,
  };
  if (!(key in values)) throw new Error(`no deployed value for ${key} (${logicalId})`);
  return values[key];
}

/** Evaluates a CloudFormation value (Ref, Fn::GetAtt, Fn::Join, Fn::Select, Fn::Split). */
export function evaluate(json: Record<string, any>, value: any): any {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (Array.isArray(value)) return value.map((v) => evaluate(json, v));
  if (value && typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 1) {
      const [k] = keys;
      const arg = value[k];
      if (k === 'Ref') return deployedValue(json, arg);
      if (k === 'Fn::GetAtt') return deployedValue(json, arg[0], arg[1]);
      if (k === 'Fn::Join') return (evaluate(json, arg[1]) as string[]).join(arg[0]);
      if (k === 'Fn::Select') return evaluate(json, arg[1])[Number(evaluate(json, arg[0]))];
      if (k === 'Fn::Split') return String(evaluate(json, arg[1])).split(arg[0]);
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, evaluate(json, v)]));
  }
  return value;
}

/** The JOBRUNNER_CONFIG of every function, evaluated as deployed. */
export function deployedConfigs(json: Record<string, any>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [id, r] of resourcesOfType(json, 'AWS::Lambda::Function')) {
    const v = r.Properties.Environment?.Variables?.JOBRUNNER_CONFIG;
    if (v !== undefined) out[id] = evaluate(json, v);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// External tools.

/** The jobrunner CLI: JOBRUNNER_BIN, else ../target/debug/jobrunner, built on demand. */
export function jobrunnerBinary(): string {
  const bin = process.env.JOBRUNNER_BIN ?? path.join(REPO_ROOT, 'target', 'debug', 'jobrunner');
  if (fs.existsSync(bin)) return bin;
  if (process.env.JOBRUNNER_BIN) {
    throw new Error(`JOBRUNNER_BIN=${bin} does not exist`);
  }
  const build = spawnSync('cargo', ['build', '-p', 'jobrunner-cli'], { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (build.error || build.status !== 0 || !fs.existsSync(bin)) {
    throw new Error(
      `the jobrunner CLI is needed to validate the generated config, and \`cargo build -p jobrunner-cli\` in ${REPO_ROOT} ` +
        `failed (${build.error?.message ?? `exit ${build.status}`}) or did not produce ${bin}. ` +
        'Build it, or point JOBRUNNER_BIN at a jobrunner binary.',
    );
  }
  return bin;
}

/** cfn-lint: CFN_LINT, else ../.venv/bin/cfn-lint, installed into ../.venv on demand. */
export function cfnLintBinary(): string {
  const bin = process.env.CFN_LINT ?? path.join(REPO_ROOT, '.venv', 'bin', 'cfn-lint');
  if (fs.existsSync(bin)) return bin;
  if (process.env.CFN_LINT) throw new Error(`CFN_LINT=${bin} does not exist`);
  const venv = path.join(REPO_ROOT, '.venv');
  if (!fs.existsSync(path.join(venv, 'bin', 'pip'))) execFileSync('python3', ['-m', 'venv', venv], { stdio: 'inherit' });
  execFileSync(path.join(venv, 'bin', 'pip'), ['install', 'cfn-lint==1.58.0'], { stdio: 'inherit' });
  if (!fs.existsSync(bin)) throw new Error(`installing cfn-lint did not produce ${bin}`);
  return bin;
}

export type { Stack };
