"""The sandbox hospital: a deterministic synthetic hospital behind `carefront demo`."""
