"""Runbooks: one module per area of the troubleshooting guide; each registers its checks."""
