"""Pure protocol cores: standard library only, no asyncio, no clock."""

