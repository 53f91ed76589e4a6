"""Audio in and out behind one small protocol: real devices, WAV files, or nothing.

The session hands `exchange` one block of output at a time and gets back the
microphone blocks that have arrived, each stamped with the output frame at which
it was heard. Stamping input with the output clock keeps one timeline even when
input and output are different devices whose clocks drift apart.
Only `SoundDeviceIO` (devices.py) imports sounddevice, and only when it is built; base.py
holds the protocol and its values, files.py the stand-ins without a device.
"""

from __future__ import annotations

from voice_guide.live.audio.base import AudioIO, DeviceLost, IOStats, MicBlock, MicSamples
from voice_guide.live.audio.devices import DeviceInfo, SoundDeviceIO, find_device, list_devices
from voice_guide.live.audio.files import FileIO, NullIO

__all__ = [
    "AudioIO",
    "DeviceInfo",
    "DeviceLost",
    "FileIO",
    "IOStats",
    "MicBlock",
    "MicSamples",
    "NullIO",
    "SoundDeviceIO",
    "find_device",
    "list_devices",
]
