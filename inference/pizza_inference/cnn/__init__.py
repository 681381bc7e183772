"""MicroPizzaNet: the tiny CNN served as the CPU fallback (float32 and INT8)."""
