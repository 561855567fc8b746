"""cupy.cuda for the stand-in (see cupy/__init__.py): no device is visible, so deepkern runs no kernel."""


class _Runtime:
    @staticmethod
    def getDeviceCount():
        return 0  # deepkern.cuda_available() is False: nothing may be launched

    @staticmethod
    def getDevice():
        return 0


runtime = _Runtime()


class Device:
    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def use(self):
        pass

    def synchronize(self):
        pass

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __repr__(self):
        return f"<CUDA Device {self.id} (stand-in)>"


class MemoryPointer:
    def __init__(self, ptr):
        self.ptr = ptr


class Stream:
    def __init__(self, ptr=0):
        self.ptr = ptr

    def synchronize(self):
        pass


Stream.null = Stream()


def get_current_stream():
    return Stream.null
