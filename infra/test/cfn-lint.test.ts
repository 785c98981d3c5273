// cfn-lint on the synthesized templates: no errors and no warnings.
//
// W3005 (a DependsOn that a GetAtt already implies) is ignored: CDK adds such DependsOn on
// purpose, so a function waits for its role's policy, not just the role.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { existingResources } from './fixtures';
import { cfnLintBinary, synthExample } from './support';

test('cfn-lint finds nothing in the example and the existing-resources templates', () => {
  const bin = cfnLintBinary();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobrunner-cfn-'));
  const files = [
    ['example', synthExample().json],
    ['existing', existingResources().json],
  ].map(([name, json]) => {
    const file = path.join(dir, `${name}.template.json`);
    fs.writeFileSync(file, JSON.stringify(json, null, 1));
    return file;
  });
  const run = spawnSync(bin, ['--ignore-checks', 'W3005', '--', ...files], { encoding: 'utf8' });
  if (run.error) throw run.error;
  // Exit status bits: 2 errors, 4 warnings, 8 informational.
  assert.equal(run.status! & 2, 0, `cfn-lint errors:\n${run.stdout}${run.stderr}`);
  assert.equal(run.status, 0, `cfn-lint findings:\n${run.stdout}${run.stderr}`);
});
