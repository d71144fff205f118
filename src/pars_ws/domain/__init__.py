"""The PARS domain: records, activities, boards, error codes and the rules. Plain Python, no I/O."""
