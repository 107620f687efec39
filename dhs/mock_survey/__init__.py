"""mock_survey"""
