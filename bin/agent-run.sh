#!/usr/bin/env bash
# spawnkit's agent runner, started by tmux as the pane's process with argv only (no shell string):
#   agent-run.sh PROMPT_FILE LOG_FILE [EXIT_FILE] -- COMMAND [ARG...]
# It feeds the prompt file to the agent on stdin, copies the agent's output to its log and to the pane, and exits
# with the agent's own exit status (tmux keeps it as the dead pane's status).
#
# With EXIT_FILE (`<home>/.spawnkit-exits/<task id>.<agent id>`), just before exiting it writes the status there
# as a wake-up call for the home's supervisor (src/supervisor/), which
# confirms the exit with tmux before recording anything. When a supervisor is alive (a `.supervisor.<pid>` marker in
# that directory whose process exists), it also sets the pane option @spawnkit_supervised, so tmux's pane-died hook
# (the fallback when no supervisor runs) starts no process for this exit.
set -u
# The agent's secret and its bearer token for the host's broker come in a file (0600, one per line) named by
# SPAWNKIT_AGENT_SECRET_FILE, read and deleted here before the agent starts: they are in the agent's environment, never
# in tmux's (which any client of spawnkit's socket can read) nor on a command line.
if [ -n "${SPAWNKIT_AGENT_SECRET_FILE:-}" ]; then
  if [ -f "$SPAWNKIT_AGENT_SECRET_FILE" ]; then
    { IFS= read -r SPAWNKIT_AGENT_SECRET; IFS= read -r SPAWNKIT_AGENT_TOKEN; } <"$SPAWNKIT_AGENT_SECRET_FILE"
    export SPAWNKIT_AGENT_SECRET SPAWNKIT_AGENT_TOKEN
  fi
  rm -f "$SPAWNKIT_AGENT_SECRET_FILE"
  unset SPAWNKIT_AGENT_SECRET_FILE
fi
# The orchestrator's credentials, which tmux's server may have inherited from whoever started it, are not the agent's.
unset SPAWNKIT_HTTP_TOKEN SPAWNKIT_DATABASE_URL
prompt=$1
log=$2
exit_file=
if [ "$3" = "--" ]; then
  shift 3
else
  exit_file=$3
  shift 4
fi
"$@" <"$prompt" 2>&1 | tee -a "$log"
status=${PIPESTATUS[0]}
if [ -n "$exit_file" ]; then
  exits_dir=${exit_file%/*}
  supervised=
  for marker in "$exits_dir"/.supervisor.*; do
    pid=${marker##*.}
    case $pid in '' | *[!0-9]*) continue ;; esac
    if kill -0 "$pid" 2>/dev/null; then
      supervised=1
      break
    fi
  done
  if [ -n "$supervised" ] && [ -n "${TMUX_PANE:-}" ]; then
    tmux set-option -p -t "$TMUX_PANE" @spawnkit_supervised 1 2>/dev/null
  fi
  # Written in place, with builtins only (no process started): its appearance is the wake-up, and the supervisor never
  # reads what it holds, so a reader that sees it half-written loses nothing.
  printf '%s\n' "$status" >"$exit_file" 2>/dev/null
fi
# tmux before 3.6, built with utempter (Debian, Ubuntu), can lose the SIGCHLD of a pane whose terminal closes as its
# process exits (tmux issue 4559); the pane then looks dead without an exit status and pane-died never runs. A short
# background holder keeps the terminal open past this exit, so tmux sees the exit first.
sleep 1 &
exit "$status"
