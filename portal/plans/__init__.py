"""Payment plans: the policy's schedules, the agreements, the installment runner and their pages."""
