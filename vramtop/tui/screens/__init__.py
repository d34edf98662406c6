"""The screens: overview, model and GPU drill-downs, help."""
