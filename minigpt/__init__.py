"""minigpt: attention, transformer blocks and a small GPT written in tinygrad, for learning."""

from minigpt.device import DeviceError, describe_device, pick_device

__all__ = ["DeviceError", "describe_device", "pick_device"]
