"""The PARS domain: records, activities, boards, error codes and the rules. Plain Python, no frameworks;
its only I/O is reading the error-code messages shipped with the package, once at import."""
