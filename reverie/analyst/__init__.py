"""The analyst's toolkit: a sandbox for its SQL, evidence traced to the data, numbers grounded in what the words say."""
