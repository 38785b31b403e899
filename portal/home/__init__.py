"""The patient's home page: what they owe and what needs them, one section per domain."""
