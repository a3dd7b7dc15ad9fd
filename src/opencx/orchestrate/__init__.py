"""Acting on what OpenCX knows: triggers, the contact policy, next best action, delivery."""
