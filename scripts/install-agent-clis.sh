#!/usr/bin/env bash
# Install the real agent CLIs (Claude Code, Codex, Gemini CLI) from the npm registry into a cache directory, outside
# the project's dependencies, for test/AgentClis.test.ts. Idempotent: does nothing when all three are present.
#   SPAWNKIT_AGENT_CLIS_DIR   where to install (default ~/.cache/spawnkit-agent-clis); the CLIs land in its
#                             node_modules/.bin
set -euo pipefail
dir="${SPAWNKIT_AGENT_CLIS_DIR:-$HOME/.cache/spawnkit-agent-clis}"
bin="$dir/node_modules/.bin"
if [ -x "$bin/claude" ] && [ -x "$bin/codex" ] && [ -x "$bin/gemini" ]; then
  echo "agent CLIs already installed in $dir"
  exit 0
fi
mkdir -p "$dir"
echo "installing the agent CLIs into $dir"
npm install --prefix "$dir" --no-save --no-audit --no-fund \
  @anthropic-ai/claude-code @openai/codex @google/gemini-cli
for cli in claude codex gemini; do
  if [ ! -x "$bin/$cli" ]; then
    echo "install-agent-clis: $bin/$cli is missing after npm install" >&2
    exit 1
  fi
done
echo "agent CLIs installed in $dir"
