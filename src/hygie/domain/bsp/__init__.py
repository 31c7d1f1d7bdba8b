"""The professionals' services (BSP): the rules behind the portal's pages, framework-free."""
