"""kopf handlers, one module per resource. Handlers stay thin: gather observations, call the
pure core, carry out its actions."""
