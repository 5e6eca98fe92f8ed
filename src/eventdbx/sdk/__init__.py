"""What users import: the asyncio control-socket Client and the process-plugin SDK."""
