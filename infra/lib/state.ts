// The state table: the run ledger (one item per run, the slots of capped jobs, the latest run of
// each S3 key, each schedule's last tick), the scaler's scale-in history and the tracker's alert
// dedupe marks. One on-demand DynamoDB table whose items expire through TTL (`expires_at`), with
// one global secondary index that lists runs by day (`jobrunner run list`). Each function may read
// and write only the items under its own key prefixes (`dynamodb:LeadingKeys`).

import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

export interface StateTableProps {
  /**
   * Runs are the history of what ran; the rest (slots, histories, dedupe marks) is rebuilt or
   * expires anyway. Set `RemovalPolicy.RETAIN` to keep the ledger when the stack is deleted.
   * @default RemovalPolicy.DESTROY
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The item actions the functions call (`crates/aws/src/`): a strongly consistent read and a
 * conditional write of one item by `pk`.
 */
export const STATE_ACTIONS = ['dynamodb:GetItem', 'dynamodb:PutItem'];

/**
 * The `pk` prefix of each kind of item (`crates/core/src/ledger/keys.rs`, the scaler's
 * `state_key`, the tracker's `DEDUPE_KEY_PREFIX`).
 */
export const STATE_KEY_PREFIXES = {
  /** A run's record: `run/<run_id>`. */
  run: 'run/',
  /** A capped job's slots and its line of waiting runs: `slots/<job>`. */
  slots: 'slots/',
  /** The latest run of a job for an S3 key: `object/<job>/<bucket>/<key>`. */
  object: 'object/',
  /** A schedule's last tick and what the sweep has checked: `schedule/<name>`. */
  schedule: 'schedule/',
  /** The tracker's dedupe marks of alerts already sent. */
  alert: 'alert/',
  /** The scaler's scale-in history of a worker: `scaler#<worker>`. */
  scaler: 'scaler#',
} as const;

export type StateKind = keyof typeof STATE_KEY_PREFIXES;

/** The kinds of items each function reads and writes (and nothing else). */
export const STATE_ACCESS = {
  /** Creates runs, takes slots, records the latest run of a key and each schedule's tick. */
  launcher: ['run', 'slots', 'object', 'schedule'],
  /** Records each run's progress, frees slots, sweeps schedules, dedupes alerts. */
  tracker: ['run', 'slots', 'schedule', 'alert'],
  scaler: ['scaler'],
  /** `jobrunner run list|view|cancel`: reads runs (by id or by S3 key), marks one cancelled. */
  operator: ['run', 'object'],
} as const satisfies Record<string, readonly StateKind[]>;

/** The prefixes of some kinds of items. */
export function keyPrefixes(kinds: readonly StateKind[]): string[] {
  return kinds.map((k) => STATE_KEY_PREFIXES[k]);
}

/** The listing index (`crates/core/src/ledger/keys.rs`: `LIST_INDEX`, `LIST_PK`, `LIST_SK`). */
export const LIST_INDEX = { name: 'runs-by-day', partitionKey: 'list_pk', sortKey: 'list_sk' } as const;

export class StateTable extends Construct {
  readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string, props: StateTableProps = {}) {
    super(scope, id);
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: 'expires_at',
      removalPolicy: props.removalPolicy ?? RemovalPolicy.DESTROY,
    });
    // Runs by the UTC day they were queued (`runs#YYYY-MM-DD`), newest last (`<queued_at>#<run_id>`).
    this.table.addGlobalSecondaryIndex({
      indexName: LIST_INDEX.name,
      partitionKey: { name: LIST_INDEX.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: LIST_INDEX.sortKey, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });
  }

  /** The ARN of the listing index. */
  get listIndexArn(): string {
    return `${this.table.tableArn}/index/${LIST_INDEX.name}`;
  }

  /**
   * Lets a function read and write its own items: `STATE_ACTIONS` on this table, only for
   * partition keys that start with one of `keyPrefixes`.
   */
  grantState(grantee: iam.IGrantable, keyPrefixes: readonly string[]): iam.Grant {
    if (!keyPrefixes.length) throw new Error('grantState: name at least one key prefix');
    return iam.Grant.addToPrincipal({
      grantee,
      actions: STATE_ACTIONS,
      resourceArns: [this.table.tableArn],
      conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': keyPrefixes.map((p) => `${p}*`) } },
    });
  }

  /** `dynamodb:Query` on the listing index (whose partition key is not `pk`: no LeadingKeys). */
  grantListRuns(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: ['dynamodb:Query'], resourceArns: [this.listIndexArn] });
  }
}
