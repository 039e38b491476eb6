"""The partition: state machine (rules), processor (ordering + group commit), timers."""
