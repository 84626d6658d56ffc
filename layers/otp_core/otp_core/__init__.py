"""OTP core: the domain logic, ports and AWS adapters shared by every function of the stack."""

__version__ = "0.1.0"
