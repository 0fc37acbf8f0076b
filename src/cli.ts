#!/usr/bin/env bun
import pkg from "../package.json" with { type: "json" };
import { check } from "./cli/check.ts";
import { deploy } from "./cli/deploy.ts";
import { history } from "./cli/history.ts";
import { installUnit } from "./cli/install-unit.ts";
import { rollback } from "./cli/rollback.ts";
import { serve } from "./cli/serve.ts";
import { status } from "./cli/status.ts";
import { ConfigError } from "./config/config-error.ts";

const USAGE = `hooksd ${pkg.version}: deploys a site when its forge sends a push webhook

Usage:
  hooksd serve  --repo DIR [options]   receive webhooks and deploy in the background
  hooksd serve  --config FILE          the same for every target in a config file (SIGHUP reloads it)
  hooksd deploy --repo DIR [options]   deploy the branch's current tip now, once
  hooksd history [--target T] [--limit N] [--json] [--state-dir DIR]
                                       the recorded deploys, newest first
  hooksd status [--repo DIR [--name N]] [--json] [--state-dir DIR]
                                       each target's deployed commit and last deploy
  hooksd check  --config FILE          validate a config file: exit 0, or 2 listing its problems
  hooksd rollback --repo DIR [--to ID] [--state-dir DIR] [--name NAME]
                                       switch DIR/current back to the previous (or named) release
  hooksd install-unit [serve options] [--dest DIR] [--bin PATH]
                                       write the systemd unit (default /etc/systemd/system/hooksd.service)
  hooksd --help | --version

Target options (serve and deploy):
  --repo DIR               the checkout to deploy into (created by the first deploy with --remote)
  --remote URL             the git remote (default: DIR's origin)
  --branch NAME            the branch to deploy (default: DIR's current branch; '*' follows every branch)
  --name NAME              the target's name in logs and status (default: DIR's base name)
  --credentials-file FILE  'username:token' for a private remote, sent as HTTP basic auth
  --force                  overwrite local changes to tracked files instead of failing
  --fetch-timeout SECONDS  give up on a stalled remote (default 600)
  --state-dir DIR          where hooksd keeps its files (default: $STATE_DIRECTORY or ~/.local/state/hooksd)
  --strategy in-place|atomic
                           in-place: update DIR's checkout (default for a checkout); atomic: DIR/releases/<id>
                           plus a DIR/current symlink switched atomically (default for such a layout)
  --keep N                 atomic: releases kept (default 5; the current and previous are never pruned)
  --hooks-dir DIR          lifecycle hooks: post-checkout, pre-deploy, post-deploy, deploy-failed
  --repo-hooks PATH        also run hooks committed in the deployed tree under PATH (e.g. .hooksd)
  --hook-timeout SECONDS   kill a hook's process group after this long (default 600)
  --health-url URL         atomic: switch back unless URL answers 2xx after publishing
  --health-timeout SECONDS how long the health URL has (default 30)

Serve options:
  --config FILE            targets, secrets and settings from a TOML (or .json) file; no other flag with it
  --listen HOST:PORT       where to listen (default 127.0.0.1:8000)
  --secret-file FILE       the webhook secret (or env HOOKSD_SECRET, or the systemd credential
                           webhook-secret); required
  --allow-unauthenticated  accept deliveries without a secret (not recommended)
  --tls-cert FILE          serve HTTPS with this certificate (PEM, chain included) ...
  --tls-key FILE           ... and its key; both files are read again on SIGHUP
  --admin-token-file FILE  opens /status, /deploys/ID, /metrics to non-loopback clients
                           sending 'Authorization: Bearer TOKEN' (or credential admin-token)
  --shutdown-timeout SECONDS  on SIGTERM, wait this long for a running deploy (default 90)

install-unit options (serve options go into ExecStart=; --secret-file and
--credentials-file become LoadCredential= lines, default /etc/hooksd/webhook-secret):
  --dest DIR               where to write hooksd.service (default /etc/systemd/system)
  --bin PATH               the installed executable (default /usr/local/bin/hooksd)

Exit status: 0 success, 1 a failed deploy, 2 a usage or configuration error.
`;

const commands: Record<string, (argv: string[]) => Promise<number>> = {
  serve,
  deploy,
  check,
  history,
  status,
  rollback,
  "install-unit": installUnit,
};

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    // Not asked for: a usage error, so the usage goes where errors go.
    process.stderr.write(USAGE);
    return 2;
  }
  if (command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(USAGE);
    return 0;
  }
  if (command === "--version" || command === "-V") {
    process.stdout.write(`hooksd ${pkg.version}\n`);
    return 0;
  }
  const run = commands[command];
  if (!run) return usageError(`unknown command '${command}'`);
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    return await run(rest);
  } catch (err) {
    if (err instanceof ConfigError) return usageError(err.message);
    throw err;
  }
}

function usageError(message: string): number {
  process.stderr.write(`hooksd: ${message}\nRun 'hooksd --help' for usage.\n`);
  return 2;
}

if (import.meta.main) void main(process.argv.slice(2)).then((code) => process.exit(code));
