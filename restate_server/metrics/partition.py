"""One partition's counters: time to apply each command, starts, timers.

``restate_partition_apply_command_duration_seconds`` is labelled with the real
server's name for the command (its ``command`` label values, the kinds of its
partition log records). Our commands map onto them as follows; every effect an
attempt reports is one ``InvokerEffect`` there as here:

=====================================================  =========================
ours                                                   real ``command``
=====================================================  =========================
Invoke                                                 Invoke
JournalCommand, ProposeRunCompletion, AttemptEnded,    InvokerEffect
AttemptSuspended, AttemptFailed
TimerFired                                             Timer
AttachCaller, AttachInvocation                         AttachInvocation
AppendNotification (a completion / a signal)           InvocationResponse / NotifySignal
ResolveAwakeable                                       NotifySignal
CancelInvocation, KillInvocation, CompleteInvocation   TerminateInvocation
PurgeInvocation, PauseInvocation, ResumeInvocation     the same names
TruncateOutbox                                         TruncateOutbox
Recover (resume what was in flight at start)           AnnounceLeader
Deliver (from another partition's outbox)              the name of what it carries
=====================================================  =========================

Every partition here is its own leader, so ``leader`` is always ``"1"``.
"""

from __future__ import annotations

from restate_server.metrics import names
from restate_server.metrics.families import Family, Labels, family, summary
from restate_server.metrics.histogram import LogHistogram
from restate_server.metrics.upkeep import HistogramSet, new_histogram
from restate_server.partition import commands as c

COMMAND_NAMES: dict[type, str] = {
    c.Invoke: "Invoke",
    c.JournalCommand: "InvokerEffect",
    c.ProposeRunCompletion: "InvokerEffect",
    c.AttemptEnded: "InvokerEffect",
    c.AttemptSuspended: "InvokerEffect",
    c.AttemptFailed: "InvokerEffect",
    c.TimerFired: "Timer",
    c.AttachCaller: "AttachInvocation",
    c.AttachInvocation: "AttachInvocation",
    c.ResolveAwakeable: "NotifySignal",
    c.CancelInvocation: "TerminateInvocation",
    c.KillInvocation: "TerminateInvocation",
    c.CompleteInvocation: "TerminateInvocation",
    c.PurgeInvocation: "PurgeInvocation",
    c.PauseInvocation: "PauseInvocation",
    c.ResumeInvocation: "ResumeInvocation",
    c.TruncateOutbox: "TruncateOutbox",
    c.Recover: "AnnounceLeader",
}


def command_name(command: object) -> str:
    if isinstance(command, c.Deliver):
        return command_name(command.command)
    if isinstance(command, c.AppendNotification):
        is_signal = command.signal_id is not None or command.signal_name is not None
        return "NotifySignal" if is_signal else "InvocationResponse"
    return COMMAND_NAMES.get(type(command), type(command).__name__)


class CommandDurations:
    """How long commands take to apply, by the real server's command name.

    One per process, shared by its partitions: the real server's summary has no
    partition label, and a few lists that every partition appends to stay in the cache
    (one per partition and command did not). The processor appends the nanoseconds to
    ``durations_by_class[command.__class__]``, or to :meth:`durations_for`, which fills
    that cache for commands whose name does not depend on their content.
    """

    __slots__ = ("_by_name", "_histograms", "durations_by_class")

    def __init__(self, histograms: HistogramSet | None = None) -> None:
        self._histograms = histograms
        self._by_name: dict[str, LogHistogram] = {}
        self.durations_by_class: dict[type, list[int]] = {}

    def durations_for(self, command: object) -> list[int]:
        """Where to append the time ``command`` took to apply."""
        name = command_name(command)
        histogram = self._by_name.get(name)
        if histogram is None:
            histogram = self._by_name[name] = new_histogram(self._histograms)
        if type(command) in COMMAND_NAMES:
            self.durations_by_class[type(command)] = histogram.values
        return histogram.values

    def families(self, now: float) -> list[Family]:
        return [
            summary(
                names.PARTITION_APPLY_COMMAND,
                (
                    ((("command", name), ("leader", "1")), histogram.snapshot(now))
                    for name, histogram in self._by_name.items()
                ),
            )
        ]


class PartitionMetrics:
    """One partition's counters, and the process's command durations it appends to."""

    __slots__ = ("durations", "durations_by_class", "partition_id", "starts", "timers_fired")

    def __init__(self, partition_id: int, durations: CommandDurations | None = None) -> None:
        self.partition_id = partition_id
        self.durations = durations if durations is not None else CommandDurations()
        self.durations_by_class = self.durations.durations_by_class
        self.starts = 0
        self.timers_fired = 0

    def durations_for(self, command: object) -> list[int]:
        return self.durations.durations_for(command)

    def families(self, now: float, queued_commands: int, timers_armed: int) -> list[Family]:
        """This partition's series (the command durations are the process's: see
        :class:`CommandDurations`)."""
        pid: Labels = (("partition_id", str(self.partition_id)),)
        return [
            family(names.PARTITION_START, [((("partition", pid[0][1]),), self.starts)]),
            family(names.PARTITION_QUEUED_COMMANDS, [(pid, queued_commands)]),
            family(names.TIMERS_ARMED, [(pid, timers_armed)]),
            family(names.TIMERS_FIRED, [(pid, self.timers_fired)] if self.timers_fired else []),
        ]
