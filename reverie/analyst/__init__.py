"""The analyst: its tools (schemas and what they do), its conversation loop and the ledger of its calls; a sandbox for
its SQL, evidence traced to the data, numbers grounded in what the words say."""
