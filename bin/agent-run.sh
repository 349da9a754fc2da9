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
status=${PIPESTATUS[0]}
# tmux before 3.6, built with utempter (Debian, Ubuntu), can lose the SIGCHLD of a pane whose terminal closes as its
# process exits (tmux issue 4559); the pane then looks dead without an exit status and pane-died never runs. A short
# background holder keeps the terminal open past this exit, so tmux sees the exit first.
sleep 1 &
exit "$status"
