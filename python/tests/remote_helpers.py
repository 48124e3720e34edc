"""A module sent whole with remote_exec(module); its functions are sent with
remote_exec(function, **kwargs). Line numbers matter to the tests."""

if __name__ == "__channelexec__":
    for item in channel:  # noqa: F821 -- the remote exec global
        channel.send(("module", item))  # noqa: F821


def double(channel, factor=2):
    for item in channel:
        channel.send(item * factor)


def fails(channel):
    x = 1
    raise ValueError("failing on line %d" % (x + 16))


def uses_global(channel):
    channel.send(SOMETHING)  # noqa: F821
