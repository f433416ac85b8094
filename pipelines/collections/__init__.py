"""Payments and collections: intake and matching, allocation, aging, dunning, prioritisation, exports."""
