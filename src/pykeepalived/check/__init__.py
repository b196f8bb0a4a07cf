"""Health checkers: sans-IO verdict and pool logic first; the asyncio checkers come with issue 4."""
