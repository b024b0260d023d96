"""Pure logic of projects and runs: states, transitions, planning. No I/O, no clock."""
