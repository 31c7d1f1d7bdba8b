"""Business rules of the citizen portal (ENS), framework-free: what the pages of web/ens adapt."""
