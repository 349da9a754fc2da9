#!/usr/bin/env bash
# spawnkit's agent runner, started by tmux as the pane's process with argv only (no shell string):
#   agent-run.sh PROMPT_FILE LOG_FILE -- COMMAND [ARG...]
# It feeds the prompt file to the agent on stdin, copies the agent's output to its log and to the pane, and exits
# with the agent's own exit status (tmux keeps it as the dead pane's status).
set -u
prompt=$1
log=$2
shift 3
"$@" <"$prompt" 2>&1 | tee -a "$log"
exit "${PIPESTATUS[0]}"
