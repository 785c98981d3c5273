// One jobrunner Lambda function: a RustFunction built from the repository's Cargo workspace, with
// its own role (no managed policies: it may write only to its own log group) and a log group
// with a retention period; X-Ray active tracing on request.

import * as path from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { RustFunction } from 'cargo-lambda-cdk';
import { Construct } from 'constructs';
import { CONFIG_ENV } from './config';
import { acknowledgeWildcardResource } from './nag';

/** Settings shared by the three functions. */
export interface FunctionOptions {
  /**
   * The Cargo workspace manifest that holds the `launcher`, `scaler` and `tracker` binaries.
   * @default the repository root's Cargo.toml (`../../Cargo.toml` from this file)
   */
  readonly manifestPath?: string;
  /**
   * CPU architecture. Graviton is cheaper per GB-second; building for it needs the aarch64
   * Rust target (cargo lambda cross-links with zig).
   * @default lambda.Architecture.ARM_64
   */
  readonly architecture?: lambda.Architecture;
  /** @default 128 (the functions are small Rust binaries) */
  readonly memorySize?: number;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** What happens to the log groups when the stack is deleted. @default RemovalPolicy.DESTROY */
  readonly logRemovalPolicy?: RemovalPolicy;
  /** `RUST_LOG` for the functions. @default 'info' */
  readonly logLevel?: string;
  /** Cargo profile used when bundling. @default 'release' */
  readonly cargoProfile?: string;
  /**
   * X-Ray active tracing (`lambda.Tracing.ACTIVE`): each invocation is sampled and traced, and
   * the launcher passes its sampled trace into the tasks it starts as `TRACEPARENT` (without
   * it, each task gets a trace context derived from its run; see docs/tracing.md). The role
   * gets `xray:PutTraceSegments` and `xray:PutTelemetryRecords`, as CDK grants them.
   * @default false
   */
  readonly tracing?: boolean;
}

/** The repository root's Cargo.toml, relative to this file (infra/lib/). */
export const DEFAULT_MANIFEST = path.resolve(__dirname, '..', '..', 'Cargo.toml');

export interface JobRunnerFunctionProps extends FunctionOptions {
  /** The Cargo binary: `launcher`, `scaler` or `tracker`. */
  readonly binaryName: string;
  readonly description: string;
  /** The config document as a (tokenized) JSON string. */
  readonly config: string;
  readonly timeout: Duration;
  readonly reservedConcurrentExecutions?: number;
}

export class JobRunnerFunction extends Construct {
  readonly function: lambda.Function;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: JobRunnerFunctionProps) {
    super(scope, id);
    const architecture = props.architecture ?? lambda.Architecture.ARM_64;

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.DESTROY,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `jobrunner ${props.binaryName}: writes its own logs; further grants are added per resource`,
    });
    this.logGroup.grantWrite(this.role);

    this.function = new RustFunction(this, 'Function', {
      manifestPath: props.manifestPath ?? DEFAULT_MANIFEST,
      binaryName: props.binaryName,
      runtime: 'provided.al2023',
      architecture,
      bundling: { architecture, profile: props.cargoProfile },
      description: props.description,
      memorySize: props.memorySize ?? 128,
      timeout: props.timeout,
      role: this.role,
      logGroup: this.logGroup,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      tracing: props.tracing ? lambda.Tracing.ACTIVE : undefined,
      // The whole config inline: Lambda allows 4 KB for all variables (see JobRunner).
      environment: { [CONFIG_ENV]: props.config, RUST_LOG: props.logLevel ?? 'info' },
    });
    if (props.tracing) {
      // X-Ray's PutTraceSegments and PutTelemetryRecords take no resource ARN.
      acknowledgeWildcardResource(this.role, '*', 'X-Ray trace segments and telemetry records have no resource ARN (active tracing was asked for)');
    }
  }
}
