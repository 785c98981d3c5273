// Real bundling, without compiling: a stand-in `cargo` first on PATH records how
// cargo-lambda-cdk calls `cargo lambda build` and writes a placeholder bootstrap. This checks what
// `npm run synth` (and `cdk deploy`) will run: one release build per binary, from the
// workspace root, for the chosen architecture.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { cdkJsonContext, INFRA_DIR, REPO_ROOT, resourcesOfType } from './support';

const temps: string[] = [];
after(() => {
  for (const dir of temps) fs.rmSync(dir, { recursive: true, force: true });
});

const FAKE_CARGO = `#!/bin/sh
echo "$(pwd) | $*" >> "$FAKE_CARGO_LOG"
if [ "$1" = lambda ] && [ "$2" = --version ]; then echo "cargo-lambda (stand-in)"; exit 0; fi
dir=""; bin=""; prev=""
for a in "$@"; do
  [ "$prev" = --lambda-dir ] && dir="$a"
  [ "$prev" = --bin ] && bin="$a"
  prev="$a"
done
mkdir -p "$dir" && printf '#!/bin/sh\\n# %s\\n' "$bin" > "$dir/bootstrap"
`;

function synthWithStandIn(architecture: string) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jobrunner-bundling-'));
  temps.push(tmp);
  fs.mkdirSync(path.join(tmp, 'bin'));
  fs.writeFileSync(path.join(tmp, 'bin', 'cargo'), FAKE_CARGO, { mode: 0o755 });
  const log = path.join(tmp, 'cargo.log');
  const outdir = path.join(tmp, 'cdk.out');
  const run = spawnSync(process.execPath, ['--import', 'tsx', path.join('bin', 'app.ts')], {
    cwd: INFRA_DIR,
    encoding: 'utf8',
    env: {
      ...process.env,
      PATH: `${path.join(tmp, 'bin')}:${process.env.PATH}`,
      FAKE_CARGO_LOG: log,
      CDK_OUTDIR: outdir,
      CDK_CONTEXT_JSON: JSON.stringify({ ...cdkJsonContext(), architecture }),
    },
  });
  if (run.error) throw run.error;
  assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
  const builds = fs
    .readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .filter((l) => l.includes('lambda build'));
  const template = JSON.parse(fs.readFileSync(path.join(outdir, 'JobRunnerExample.template.json'), 'utf8'));
  return { builds, template };
}

test('each function is a release build of its binary from the workspace root', () => {
  const { builds, template } = synthWithStandIn('x86_64');
  assert.equal(builds.length, 3, builds.join('\n'));
  for (const name of ['launcher', 'scaler', 'tracker']) {
    const line = builds.find((l) => l.includes(`--bin ${name} `));
    assert.ok(line, `a build of ${name}`);
    const [cwd, args] = line.split(' | ');
    assert.equal(cwd, REPO_ROOT);
    assert.match(args, new RegExp(`^lambda build --lambda-dir \\S+ --release --x86-64 --bin ${name} --flatten ${name}$`));
  }
  const keys = resourcesOfType(template, 'AWS::Lambda::Function')
    .filter(([, r]) => String(r.Properties.Description ?? '').startsWith('jobrunner '))
    .map(([, r]) => r.Properties.Code.S3Key);
  assert.equal(new Set(keys).size, 3, 'three distinct code assets');
});

test('arm64 (the default) cross-builds with --arm64', () => {
  const { builds } = synthWithStandIn('arm64');
  assert.equal(builds.filter((l) => / --release --arm64 --bin /.test(l)).length, 3, builds.join('\n'));
});
