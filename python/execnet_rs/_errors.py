"""execnet's exceptions (plain Python classes, raised by the native core)."""


class DataFormatError(Exception):
    """An item could not be serialized or deserialized."""


class DumpError(DataFormatError):
    """An item cannot be serialized (its type, or a value out of range)."""


class LoadError(DataFormatError):
    """Bytes do not decode into an item."""


class RemoteError(Exception):
    """An exception of the remote side, carrying its formatted traceback."""

    def __init__(self, formatted):
        # in args too, so that it pickles (a process pool passing it on)
        super().__init__(formatted)
        self.formatted = formatted

    def __str__(self):
        return self.formatted

    def __repr__(self):
        return "%s: %s" % (self.__class__.__name__, self.formatted)

    def warn(self):
        if self.formatted != INTERRUPT_TEXT:
            import os
            import sys

            sys.stderr.write("[%d] Warning: unhandled %r\n" % (os.getpid(), self))


class TimeoutError(IOError):
    """A receive or waitclose ran out of time."""


class HostNotFound(Exception):
    """The remote host of an ssh or socket gateway could not be reached."""


INTERRUPT_TEXT = "keyboard-interrupted"
