"""The representatives' console: find a caller, act as them, the question queue, the audit viewer."""
